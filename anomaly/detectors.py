"""Online anomaly detector for one stream of readings (one device's metric).

Every reading is scored from the past only, then learned from; memory is constant per stream and
the whole state serialises to a compact blob, so any worker can resume a stream exactly where
another left it (same scores as an uninterrupted run).
"""

import math
import struct

# Version tag of the serialised layout: a blob of another layout is refused, not misread.
STATE_VERSION = 1

SLOTS_PER_DAY = 96  # 15-minute time-of-day slots: fine enough for shift changes
# Two daily profiles compete: one for every day, one with weekdays and weekends apart (offset by
# SLOTS_PER_DAY); the one that has predicted better so far is used.
PROFILE_SLOTS = 3 * SLOTS_PER_DAY

SCALARS = (
    "seen",
    "started_at",
    "level",
    "err_level",
    "slow_mean",
    "slow_var",
    "mid",
    "mid_season",
    "err_day",
    "err_week",
    "raw_short",
    "raw_mean",
    "raw_var",
    "record",
    "drift_record",
    "quiet_left",
)


def _slots(epoch_seconds):
    """Slots of a reading in the every-day profile and in the weekday/weekend profile."""
    day, second = divmod(int(epoch_seconds), 86400)
    slot = second * SLOTS_PER_DAY // 86400
    weekend = (day + 3) % 7 >= 5  # 1970-01-01 was a Thursday
    return slot, SLOTS_PER_DAY + slot + (SLOTS_PER_DAY if weekend else 0)


def _tail(z):
    """Two-sided Gaussian tail probability of a standardised deviation."""
    return math.erfc(abs(z) / math.sqrt(2.0))


class StreamDetector:
    """Scores readings of one stream in 0..1, 1 meaning the reading is very unusual.

    Two kinds of predictor explain each reading: a fast-moving level (the recent past) and two
    time-of-day profiles, one for every day and one with weekdays and weekends apart (so that a
    daily or shift pattern is expected, not alarmed on). A reading is surprising only if no
    predictor comes close, measured against the best predictor's typical error. A slower drift
    measure compares the recent mean with the long-term mean and with the profile.

    Two scores come out of that, and the higher one counts:
    - record breaking: how far the reading's deviation (or the drift) exceeds the largest one
      seen lately, so a spike, a step or a drift beyond anything the stream did before scores
      high at once, while deviations the stream makes every day do not;
    - anomaly likelihood: the short-term average surprise against its long-term distribution,
      so a noisy stream's usual surprise scores low and a change in its behaviour high.

    After a score at the alarm level the output stays low until the score has been back under
    the re-arm level for a run of readings (or a much larger deviation comes), so one anomaly
    raises one alarm. No score reaches the alarm level during probation (a count of readings and
    at least a day). The tuning constants below are class attributes so that a benchmark can
    try variants; production uses the defaults.
    """

    probation = 250
    probation_seconds = 86400.0
    warmup = 30
    level_rate = 0.2
    mid_rate = 0.05
    slow_rate = 0.005
    error_rate = 0.01
    season_rate = 0.1
    short_rate = 0.2
    raw_rate = 0.006
    surprise_scale = 8.0
    likelihood_digits = 12.0
    spread_floor = 0.01
    record_decay = 0.9999
    record_low = 0.7
    record_span = 0.7
    alarm_level = 0.5
    quiet_readings = 100
    rearm_level = 0.1
    escalation = 1.5
    quiet_factor = 0.05

    def __init__(self):
        for name in SCALARS:
            setattr(self, name, 0.0)
        self.ratio = 0.0  # the reading's record-breaking ratio, recomputed for each reading
        self.profile_mean = [0.0] * PROFILE_SLOTS
        self.profile_seen = [0.0] * PROFILE_SLOTS

    def score(self, epoch_seconds, value):
        """Score one reading from the past only, then learn from it; returns 0..1.

        ``epoch_seconds`` is the reading's time on the plant's wall clock (what the daily profile
        follows); readings must come in time order. ValueError on a value that is not finite:
        one NaN would poison every later score.
        """
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"reading value {value} is not finite")
        self.seen += 1
        if self.seen == 1:
            self.level = self.slow_mean = self.mid = value
            self.started_at = float(epoch_seconds)
        day_slot, week_slot = _slots(epoch_seconds)
        surprise, instant = self._surprise(day_slot, week_slot, value)
        self._learn(day_slot, week_slot, value)
        score = max(instant, self._likelihood(surprise))
        if self.seen <= self.probation or epoch_seconds - self.started_at < self.probation_seconds:
            return min(score, self.alarm_level * 0.5)
        return self._quieten(score)

    def _season_error(self, slot, value):
        """The profile's prediction error for the reading, None while the slot is unlearned.

        The neighbouring slots count too (the one that explains the reading best), so that an
        edge of the daily pattern coming a few minutes early or late is not a surprise.
        """
        if not self.profile_seen[slot]:
            return None
        base = slot - slot % SLOTS_PER_DAY
        best = value - self.profile_mean[slot]
        for neighbour in (slot - 1, slot + 1):
            neighbour = base + neighbour % SLOTS_PER_DAY
            if self.profile_seen[neighbour]:
                error = value - self.profile_mean[neighbour]
                if abs(error) < abs(best):
                    best = error
        return best

    def _surprise(self, day_slot, week_slot, value):
        """Per-reading surprise (0..1) and the record-breaking score (0..1) of the reading."""
        floor = 1e-6 * (abs(self.slow_mean) + math.sqrt(self.slow_var)) + 1e-12
        error, scale = abs(value - self.level), self.err_level
        day_error = self._season_error(day_slot, value)
        week_error = self._season_error(week_slot, value)
        if week_error is not None and self.err_week < self.err_day:
            season_error, season_scale = week_error, self.err_week
        else:
            season_error, season_scale = day_error, self.err_day
        if season_error is not None:
            # Whichever predictor came closest, against the better predictor's typical error: a
            # profile that is usually far off explains nothing, one as good as the level explains
            # the daily pattern's edges that the level cannot follow.
            error, scale = min(error, abs(season_error)), min(scale, season_scale)
        z = error / (math.sqrt(scale) + floor)
        # Drift: the recent mean against the long-term mean or against the daily profile,
        # whichever explains it better (each against its own spread), so that a shift ending is
        # not a drift but a wearing part is.
        self.mid += self.mid_rate * (value - self.mid)
        drift_z = abs(self.mid - self.slow_mean) / (math.sqrt(self.slow_var) + floor)
        if season_error is not None:
            self.mid_season += self.mid_rate * (season_error - self.mid_season)
            drift_z = min(drift_z, abs(self.mid_season) / (math.sqrt(season_scale) + floor))
        ratio = z / (self.record + 1e-9)
        drift_ratio = drift_z / (self.drift_record + 1e-9)
        if self.seen > self.warmup:
            self.record = max(self.record * self.record_decay, z)
            self.drift_record = max(self.drift_record * self.record_decay, drift_z)
        else:
            ratio = drift_ratio = 0.0
        ratio = max(ratio, drift_ratio)
        self.ratio = ratio  # read by _quieten for this same reading; not part of the state
        instant = min(1.0, max(0.0, (ratio - self.record_low) / self.record_span))
        return min(1.0, -math.log10(_tail(z) + 1e-12) / self.surprise_scale), instant

    def _learn(self, day_slot, week_slot, value):
        level_error = value - self.level
        self.err_level += self.error_rate * (level_error * level_error - self.err_level)
        self.level += self.level_rate * level_error
        slow_error = value - self.slow_mean
        self.slow_mean += self.slow_rate * slow_error
        self.slow_var += self.slow_rate * (slow_error * slow_error - self.slow_var)
        day_error = self._learn_slot(day_slot, value)
        if day_error is not None:
            self.err_day += self.error_rate * (day_error * day_error - self.err_day)
        week_error = self._learn_slot(week_slot, value)
        if week_error is not None:
            self.err_week += self.error_rate * (week_error * week_error - self.err_week)

    def _learn_slot(self, slot, value):
        """Move the slot's mean towards the reading; returns the prediction error once learned."""
        seen = self.profile_seen[slot]
        self.profile_seen[slot] = seen + 1.0
        if not seen:
            self.profile_mean[slot] = value
            return None
        error = value - self.profile_mean[slot]
        self.profile_mean[slot] += max(1.0 / (seen + 1.0), self.season_rate) * error
        return error

    def _likelihood(self, surprise):
        """Short-term average surprise against its long-term distribution, as a 0..1 score."""
        self.raw_short += self.short_rate * (surprise - self.raw_short)
        deviation = self.raw_short - self.raw_mean
        spread = math.sqrt(self.raw_var) + self.spread_floor
        self.raw_mean += self.raw_rate * deviation
        self.raw_var += self.raw_rate * (deviation * deviation - self.raw_var)
        if deviation <= 0:
            return 0.0
        tail = 0.5 * math.erfc(deviation / spread / math.sqrt(2.0))
        return min(1.0, math.log10(tail + 1e-300) / -self.likelihood_digits)

    def _quieten(self, score):
        """One anomaly, one alarm: after a high score the output stays low until re-armed.

        The detector re-arms once the score has stayed below the re-arm level for a run of
        readings (a deadband in time), so a long anomaly or a burst of them raises one alarm. A
        deviation well beyond the largest one seen so far (the record ratio at the escalation
        factor) comes through even while quiet: the anomaly has grown.
        """
        if self.quiet_left > 0 and self.ratio < self.escalation:
            if score < self.rearm_level:
                self.quiet_left -= 1
            else:
                self.quiet_left = float(self.quiet_readings)
            return score * self.quiet_factor
        if score >= self.alarm_level:
            self.quiet_left = float(self.quiet_readings)
        return score

    def to_bytes(self):
        """The whole state as a compact blob (see `from_bytes`)."""
        values = [getattr(self, name) for name in SCALARS] + self.profile_mean + self.profile_seen
        return struct.pack(f"<H{len(values)}d", STATE_VERSION, *values)

    @classmethod
    def from_bytes(cls, blob):
        """A detector in exactly the state `to_bytes` saved; ValueError on a foreign blob."""
        count = len(SCALARS) + 2 * PROFILE_SLOTS
        if len(blob) != 2 + 8 * count or struct.unpack_from("<H", blob)[0] != STATE_VERSION:
            raise ValueError("not a detector state of this version")
        values = struct.unpack_from(f"<{count}d", blob, 2)
        detector = cls()
        for index, name in enumerate(SCALARS):
            setattr(detector, name, values[index])
        offset = len(SCALARS)
        detector.profile_mean = list(values[offset : offset + PROFILE_SLOTS])
        detector.profile_seen = list(values[offset + PROFILE_SLOTS :])
        return detector
