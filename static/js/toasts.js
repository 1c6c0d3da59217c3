// In-app notifications on every live plant page (README "Notifications"): the in-app channel's
// `notification` live event becomes a toast (severity colour, title, body, a link to the alarm in
// the plant's console), the header counts the toasts not yet seen until the console is opened, and
// an optional beep (WebAudio, no asset) can be switched off; the choice is remembered.
//
// Events come from live.js: LiveStream.dispatch re-emits every live frame as a `live:event` DOM
// event on `document`, so this script works with whatever page script owns the stream.

import { formatTime } from "./live.js";

const HIDE_AFTER_MS = 8000; // critical toasts stay until dismissed
const SOUND_KEY = "toasts.sound"; // "on" | "off"
const SEVERITIES = ["critical", "warning", "info"];

const region = document.getElementById("toasts");
const badge = document.getElementById("unread");
const soundButton = document.getElementById("toast-sound");
const plantId = region ? region.dataset.plant : null;
const consoleUrl = plantId ? `/plants/${plantId}/alarms/` : null;
const unreadKey = `toasts.unread.${plantId}`;
const countedKey = `toasts.counted.${plantId}`; // notifications already counted (by any tab)
const COUNTED_KEEP = 50;

function store(key, value) {
  try {
    if (value === undefined) return localStorage.getItem(key);
    localStorage.setItem(key, value);
  } catch {
    // storage switched off (private mode): the page still works, the choice is not remembered
  }
  return value;
}

function unread() {
  return Number(store(unreadKey)) || 0;
}

function showUnread(count) {
  store(unreadKey, String(count));
  if (!badge) return;
  badge.hidden = count === 0;
  badge.querySelector("[data-role=count]").textContent = String(count);
  // The name starts with the visible text ("3 new"), as speech control users say it (WCAG 2.5.3).
  badge.setAttribute("aria-label", `${count} new notification${count === 1 ? "" : "s"}: open the alarm console`);
}

function countOnce(event) {
  // Several tabs of the plant receive the same notification: only the first one counts it.
  const mark = `${event.alarm_id}|${event.title}`;
  let counted = [];
  try {
    counted = JSON.parse(store(countedKey) || "[]");
  } catch {
    counted = [];
  }
  if (counted.includes(mark)) return;
  store(countedKey, JSON.stringify([...counted, mark].slice(-COUNTED_KEEP)));
  showUnread(unread() + 1);
}

function soundOn() {
  return store(SOUND_KEY) !== "off";
}

function showSound() {
  if (!soundButton) return;
  const on = soundOn();
  soundButton.setAttribute("aria-pressed", String(on));
  soundButton.textContent = on ? "Sound on" : "Sound off";
}

let audio = null;
let beeps = 0; // for tests: beeps attempted

function beep(severity) {
  if (!soundOn()) return;
  beeps += 1;
  try {
    audio = audio || new AudioContext();
    const oscillator = audio.createOscillator();
    const gain = audio.createGain();
    oscillator.frequency.value = severity === "critical" ? 880 : 660;
    gain.gain.setValueAtTime(0.15, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.3);
    oscillator.connect(gain).connect(audio.destination);
    oscillator.start();
    oscillator.stop(audio.currentTime + 0.3);
  } catch (error) {
    console.debug("toasts: no sound", error); // no audio device or blocked before a user gesture
  }
}

function alarmUrl(alarmId) {
  return alarmId ? `${consoleUrl}#alarm-${alarmId}` : consoleUrl;
}

function show(event) {
  const severity = SEVERITIES.includes(event.severity) ? event.severity : "info";
  const toast = document.createElement("div");
  toast.className = `toast toast-${severity}`;
  toast.dataset.severity = severity;
  if (event.alarm_id) toast.dataset.alarm = String(event.alarm_id);
  const title = document.createElement("strong");
  title.className = "toast-title";
  // The severity in words (not by colour alone), once: an alarm's title already starts with it
  // ("[WARNING] press-02: Vibration high", the e-mail subject's convention).
  const text = event.title || "Notification";
  const word = severity.toUpperCase();
  title.textContent = text.toUpperCase().includes(`[${word}]`) ? text : `${word}: ${text}`;
  const when = document.createElement("time");
  when.className = "toast-time";
  when.dateTime = new Date().toISOString();
  when.textContent = formatTime(when.dateTime); // plant time, as the plant bar says
  title.append(" ", when);
  const body = document.createElement("p");
  body.className = "toast-body";
  body.textContent = event.body || "";
  const link = document.createElement("a");
  link.className = "toast-link";
  link.href = alarmUrl(event.alarm_id);
  link.textContent = event.alarm_id ? "Open the alarm" : "Open the alarm console";
  const close = document.createElement("button");
  close.type = "button";
  close.className = "toast-close";
  close.setAttribute("aria-label", "Dismiss");
  close.textContent = "×";
  close.addEventListener("click", () => toast.remove());
  toast.append(title, close, body, link);
  region.append(toast);
  if (severity !== "critical") setTimeout(() => toast.remove(), HIDE_AFTER_MS);
  countOnce(event);
  beep(severity);
}

if (region && plantId) {
  // Opening the console is seeing the alarms: the count starts again.
  if (location.pathname === consoleUrl) store(unreadKey, "0");
  showUnread(unread());
  showSound();
  soundButton?.addEventListener("click", () => {
    store(SOUND_KEY, soundOn() ? "off" : "on");
    showSound();
  });
  window.addEventListener("storage", (event) => {
    if (event.key === unreadKey) showUnread(unread()); // counted or reset in another tab
    if (event.key === SOUND_KEY) showSound();
  });
  document.addEventListener("live:event", (event) => {
    if (event.detail && event.detail.kind === "notification") show(event.detail);
  });
  window.__toasts = { beeps: () => beeps };
}
