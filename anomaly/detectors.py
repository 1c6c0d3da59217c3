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
    "seen", "level", "err_level", "slow_mean", "slow_var", "mid",
    "err_day", "err_week", "raw_short", "raw_mean", "raw_var",
    "record", "drift_record", "quiet_left",
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

    Two predictors explain each reading: a fast-moving level (catches spikes and steps against
    the recent past) and a time-of-day profile per weekday/weekend (so that a daily or shift
    pattern is expected, not alarmed on). A reading is surprising only if neither predictor
    explains it, each measured against its own typical error. The per-reading surprise then goes
    through an anomaly-likelihood stage (its short-term average against its long-term
    distribution), which turns a noisy signal's steady surprise into a low score and a change in
    behaviour into a high one. After a high score the output stays quiet for a while, so one
    anomaly raises one alarm. No score reaches the alarm range during the probation period.
    """

    probation = 250
    warmup = 30
    level_rate = 0.1
    mid_rate = 0.05
    slow_rate = 0.002
    error_rate = 0.01
    season_rate = 0.25
    season_margin = 1.0
    short_rate = 0.2
    raw_rate = 0.003
    surprise_scale = 8.0
    spread_floor = 0.01
    record_decay = 0.9999
    record_low = 0.8
    record_span = 0.7
    drift_weight = 1.0
    alarm_level = 0.5
    quiet_readings = 100
    rearm_level = 0.2
    quiet_factor = 0.05

    def __init__(self):
        for name in SCALARS:
            setattr(self, name, 0.0)
        self.profile_mean = [0.0] * PROFILE_SLOTS
        self.profile_seen = [0.0] * PROFILE_SLOTS

    def score(self, epoch_seconds, value):
        """Score one reading from the past only, then learn from it; returns 0..1."""
        value = float(value)
        self.seen += 1
        if self.seen == 1:
            self.level = self.slow_mean = self.mid = value
        day_slot, week_slot = _slots(epoch_seconds)
        surprise, instant = self._surprise(day_slot, week_slot, value)
        self._learn(day_slot, week_slot, value)
        score = max(instant, self._likelihood(surprise))
        if self.seen <= self.probation:
            return min(score, self.alarm_level * 0.5)
        return self._quieten(score)

    def _season_error(self, slot, value):
        """The profile's prediction error for the reading, None while the slot is unlearned.

        The neighbouring slots count too (the one that explains the reading best), so that an
        edge of the daily pattern coming a few minutes early or late is not a surprise.
        """
        if self.profile_seen[slot] < 2:
            return None
        base = slot - slot % SLOTS_PER_DAY
        best = value - self.profile_mean[slot]
        for neighbour in (slot - 1, slot + 1):
            neighbour = base + neighbour % SLOTS_PER_DAY
            if self.profile_seen[neighbour] >= 2:
                error = value - self.profile_mean[neighbour]
                if abs(error) < abs(best):
                    best = error
        return best

    def _surprise(self, day_slot, week_slot, value):
        """Per-reading surprise (0..1) and the record-breaking score (0..1) of the reading."""
        floor = 1e-6 * (abs(self.slow_mean) + math.sqrt(self.slow_var)) + 1e-12
        z = abs(value - self.level) / (math.sqrt(self.err_level) + floor)
        day_error = self._season_error(day_slot, value)
        week_error = self._season_error(week_slot, value)
        if week_error is not None and self.err_week < self.err_day:
            season_error, season_scale = week_error, self.err_week
        else:
            season_error, season_scale = day_error, self.err_day
        if season_error is not None and season_scale < self.err_level * self.season_margin:
            z = min(z, abs(season_error) / (math.sqrt(season_scale) + floor))
        self.mid += self.mid_rate * (value - self.mid)
        drift_z = abs(self.mid - self.slow_mean) / (math.sqrt(self.slow_var) + floor)
        ratio = z / (self.record + 1e-9)
        drift_ratio = drift_z / (self.drift_record + 1e-9)
        if self.seen > self.warmup:
            self.record = max(self.record * self.record_decay, z)
            self.drift_record = max(self.drift_record * self.record_decay, drift_z)
        else:
            ratio = drift_ratio = 0.0
        ratio = max(ratio, drift_ratio * self.drift_weight)
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
        return error if seen >= 2 else None

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
        return min(1.0, math.log(tail + 1e-10) / math.log(1e-10))

    def _quieten(self, score):
        """One anomaly, one alarm: after a high score the output stays low until re-armed.

        The detector re-arms once the score has stayed below the re-arm level for a run of
        readings (a deadband in time), so a long anomaly or a burst of them raises one alarm.
        """
        if self.quiet_left > 0:
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
        detector.profile_mean = list(values[offset:offset + PROFILE_SLOTS])
        detector.profile_seen = list(values[offset + PROFILE_SLOTS:])
        return detector
