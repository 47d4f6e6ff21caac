// What the browser overlay shows: the display policy of coach/display/, rule for rule
// (see that module for the rules). Both run the same cases in the tests
// (tests/display_cases.json), so the two overlays decide alike. No DOM, no clock here:
// the page passes `now` (seconds of a monotonic clock) and `wall` (Unix seconds).
"use strict";
(function (global) {
  const PROTOCOL = 1;
  const IDLE_TEXT = "Listening…";
  const CONNECTING_TEXT = "Connecting…";
  const DISCONNECTED_TEXT = "Disconnected — reconnecting…";
  const REFUSED_TEXT = "Connection refused — retrying…";
  const NO_CALL_TEXT = "Waiting for a call…";
  const CALL_ENDED_TEXT = "Call ended";
  const FLAGGED_TEXT = "Flagged as wrong — thanks";
  const RANK = { info: 1, nudge: 2, warn: 3 };

  const DEFAULTS = {
    display_s: 6.0, fade_s: 1.0, min_show_s: 2.0, max_wait_s: 3.0, forget_after_s: 18.0,
    withdrawn_s: 1.5, lag_warn_s: 1.5, status_every_s: 1.0, clock_tolerance_s: 2.0,
    note_s: 2.5, message_s: 5.0,
  };

  function num(x) {
    return typeof x === "number" && isFinite(x) ? x : null;
  }
  function round3(x) { return Math.round(x * 1000) / 1000; }
  function key(id, t) {
    const v = num(t);
    return String(id) + "@" + (v === null ? "none" : round3(v).toFixed(3));
  }
  function rank(sev) { return RANK[sev] || 1; }
  function fmt0(x) { return (Math.round(x * 1) / 1).toFixed(0); }  // like Python's :.0f
  function fmt1(x) { return (Math.round(x * 10) / 10).toFixed(1); }
  // The status line for a "team" message (coach/display/policy.py: team_line).
  function teamLine(msg) {
    if (msg.state === "connected") {
      const shared = msg.sharing && Array.isArray(msg.sharing.shared) ? msg.sharing.shared : null;
      if (shared && shared.length) return ["Team sees: " + shared.map(String).join(", "), false];
      return ["Connected to the team server", false];
    }
    if (msg.state === "offline") {
      return ["Team server out of reach: coaching goes on, it will catch up", true];
    }
    if (msg.state === "refused") return ["The team server refused this coach", true];
    return null;
  }
  function decision(action, cue, at, age, reason) {
    return { decision: action, cue_id: cue.id, t: cue.t, at: at,
      age_s: age === null || age === undefined ? null : Math.round(age * 100) / 100,
      reason: reason || "" };
  }

  class DisplayPolicy {
    constructor(options, where) {
      this.o = Object.assign({}, DEFAULTS, options || {});
      this.where = where || "the service";
      this.connection = "connecting";
      this.everConnected = false;
      this.refusal = null;
      this.protocolNote = null;
      this.teamNote = null;  // [line, is it a problem]: what is shared with a team server
      this.inCall = false;
      this.callEnded = false;
      this.paceBand = null;
      this.paceWpm = null;
      this.talk = { agent: 0, customer: 0 };
      this.talking = {};      // speaker -> start of the turn under way
      this.clock = this.newClock();
      this.status = this.newStatus();
      this.slot = null;       // {cue, shownAt, lateS, withdrawnAt}
      this.waiting = [];      // {cue, arrivedAt, ageS, deadline}
      this.seen = new Set();
      this.retracted = new Set();
      this.note = null;
      this.noteUntil = 0;
    }

    newClock() { return { startedAt: null, latestT: null, lagS: 0, anchorAt: 0 }; }
    newStatus() {
      return { lagS: null, at: 0, degraded: false, devices: new Map(), message: null,
        messageUntil: 0 };
    }

    audioNow(now, wall) {
      const c = this.clock;
      const stream = c.latestT === null ? null : c.latestT + c.lagS + Math.max(0, now - c.anchorAt);
      const byWall = wall === null || wall === undefined || c.startedAt === null
        ? null : wall - c.startedAt;
      if (byWall === null) return stream;
      if (stream === null || Math.abs(byWall - stream) <= this.o.clock_tolerance_s) return byWall;
      return stream;
    }

    // -- transport ---------------------------------------------------------------------
    connected(now) {
      this.connection = "connected";
      this.everConnected = true;
      this.refusal = null;
      this.status = this.newStatus();
    }

    disconnected(now, reason, refused) {
      this.connection = refused ? "refused" : this.everConnected ? "disconnected" : "connecting";
      this.refusal = refused ? reason : null;
      const out = this.clear(now, "dropped", "the connection to the service was lost");
      for (const w of this.waiting) {
        out.push(decision("dropped", w.cue, now, w.ageS, "the connection to the service was lost"));
      }
      this.waiting = [];
      this.status = this.newStatus();
      return out;
    }

    // -- messages ----------------------------------------------------------------------
    feed(msg, now, wall) {
      const out = [];
      switch (msg.type) {
        case "hello": {
          const p = msg.protocol;
          this.protocolNote = p === PROTOCOL ? null
            : "the service speaks protocol " + p + ", this overlay " + PROTOCOL;
          break;
        }
        case "call": out.push(...this.onCall(msg, now)); break;
        case "cue": out.push(...this.arrive(msg, now, wall)); break;
        case "retract": out.push(...this.retract(msg, now)); break;
        case "feedback": out.push(...this.feedback(msg, now)); break;
        case "status": this.onStatus(msg, now); break;
        case "team": this.teamNote = teamLine(msg); break;
        case "prosody": {
          const t = num(msg.t);
          if (t !== null && (this.clock.latestT === null || t >= this.clock.latestT)) {
            this.clock.latestT = t; this.clock.anchorAt = now;
          }
          if (msg.speaker === "agent") {
            const w = num(msg.pace_wpm);
            this.paceWpm = w !== null && w > 0 ? w : null;
          }
          break;
        }
        case "turn": {
          const s = num(msg.start), e = num(msg.end);
          if ((msg.speaker === "agent" || msg.speaker === "customer") && s !== null && e !== null
              && e > s) {
            this.talk[msg.speaker] += e - s;
            delete this.talking[msg.speaker];
          }
          break;
        }
        case "activity": {
          // the turn under way counts too: "You 0 %" during the agent's first turn is wrong
          const t = num(msg.t);
          if ((msg.speaker === "agent" || msg.speaker === "customer") && t !== null
              && msg.speaking === true) {
            this.talking[msg.speaker] = t;
          }
          break;
        }
        default: break;
      }
      return out.concat(this.tick(now));
    }

    tick(now) {
      const out = [];
      const o = this.o;
      const slot = this.slot;
      if (slot) {
        if (slot.withdrawnAt !== null) {
          if (now >= slot.withdrawnAt + o.withdrawn_s) this.slot = null;
        } else if (now >= slot.shownAt + o.display_s + o.fade_s) {
          out.push(decision("expired", slot.cue, now, null));
          this.slot = null;
        }
      }
      const keep = [];
      for (const w of this.waiting) {
        const age = w.ageS === null ? null : w.ageS + (now - w.arrivedAt);
        if (now > w.deadline) {
          out.push(decision("dropped", w.cue, now, age, "waited for a more important cue to go"));
        } else if (age !== null && age > o.display_s) {
          out.push(decision("dropped", w.cue, now, age,
            "went stale while a more important cue was shown"));
        } else keep.push(w);
      }
      this.waiting = keep;
      if (keep.length) {
        let best = keep[0];
        for (const w of keep) {
          const a = [rank(w.cue.severity), w.arrivedAt], b = [rank(best.cue.severity), best.arrivedAt];
          if (a[0] > b[0] || (a[0] === b[0] && a[1] > b[1])) best = w;  // the first of equals, as max() does
        }
        if (this.canTake(best.cue, false, now)) {
          this.waiting.splice(this.waiting.indexOf(best), 1);
          const age = best.ageS === null ? null : best.ageS + (now - best.arrivedAt);
          out.push(...this.show(best.cue, now, age, false));
        }
      }
      return out;
    }

    act(action, now) {
      const slot = this.slot;
      if (!slot || slot.withdrawnAt !== null || this.connection !== "connected") {
        return { msg: null, decisions: [] };
      }
      const msg = { type: action, cue_id: slot.cue.id, t: slot.cue.t };
      this.slot = null;
      const out = [decision(action === "dismiss" ? "dismissed" : "flagged", slot.cue, now, null)];
      if (action === "flag") { this.note = FLAGGED_TEXT; this.noteUntil = now + this.o.note_s; }
      return { msg: msg, decisions: out.concat(this.tick(now)) };
    }

    // -- cues --------------------------------------------------------------------------
    onCall(msg, now) {
      const out = [];
      if (msg.state === "start") {
        const startedAt = num(msg.started_at);
        if (!this.inCall || startedAt === null || startedAt !== this.clock.startedAt) {
          this.talk = { agent: 0, customer: 0 };
          this.talking = {};
          this.paceWpm = null;
          this.seen.clear();
          this.retracted.clear();
          this.clock = this.newClock();
          out.push(...this.clear(now, "dropped", "a new call started"));
        }
        this.clock.startedAt = startedAt;
        this.inCall = true; this.callEnded = false;
        const b = msg.pace_band;
        const ok = Array.isArray(b) && b.length === 2 && num(b[0]) !== null && num(b[1]) !== null
          && b[0] < b[1];
        this.paceBand = ok ? [b[0], b[1]] : null;
      } else if (msg.state === "end") {
        this.inCall = false; this.callEnded = true;
        this.paceWpm = null;
      }
      return out;
    }

    arrive(msg, now, wall) {
      const sev = Object.prototype.hasOwnProperty.call(RANK, msg.severity) ? msg.severity : "info";
      const cue = { id: String(msg.id || ""), t: num(msg.t), severity: sev,
        title: String(msg.title || msg.id || "Cue"), advice: String(msg.advice || "") };
      cue.key = key(cue.id, cue.t);
      const audioNow = this.audioNow(now, wall);
      const age = audioNow === null || cue.t === null ? null : Math.max(0, audioNow - cue.t);
      const drop = (reason) => [decision("dropped", cue, now, age, reason)];
      if (this.retracted.has(cue.key)) return drop("it was withdrawn before it arrived");
      if (this.seen.has(cue.key)) return drop("it was already shown");
      this.seen.add(cue.key);
      if (age !== null && age > this.o.forget_after_s) {
        return drop("it arrived " + fmt0(age) + " s after its words");
      }
      const late = age !== null && age > this.o.display_s;
      if (this.canTake(cue, late, now)) return this.show(cue, now, age, late);
      if (late) return drop("it arrived late and another cue is on screen");
      const slot = this.slot;
      const frees = slot.shownAt + (rank(cue.severity) === rank(slot.cue.severity)
        ? this.o.min_show_s : this.o.display_s);
      if (frees - now <= this.o.max_wait_s) {
        this.waiting.push({ cue: cue, arrivedAt: now, ageS: age, deadline: now + this.o.max_wait_s });
        return [decision("waiting", cue, now, age, "a " + slot.cue.severity + " cue is on screen")];
      }
      return drop("a " + slot.cue.severity + " cue is on screen");
    }

    canTake(cue, late, now) {
      const slot = this.slot;
      if (!slot || slot.withdrawnAt !== null) return true;
      if (now >= slot.shownAt + this.o.display_s) return true;
      if (late) return false;
      if (slot.lateS !== null) return true;
      const r = rank(cue.severity), rc = rank(slot.cue.severity);
      if (r !== rc) return r > rc;
      return now - slot.shownAt >= this.o.min_show_s;
    }

    show(cue, now, age, late) {
      const out = this.clear(now, "replaced", "by the " + cue.severity + " cue " + cue.id);
      this.slot = { cue: cue, shownAt: now, lateS: late ? age : null, withdrawnAt: null };
      this.note = null;
      out.push(decision(late ? "late" : "shown", cue, now, age));
      return out;
    }

    clear(now, action, reason) {
      const slot = this.slot;
      this.slot = null;
      if (!slot || slot.withdrawnAt !== null) return [];
      if (now >= slot.shownAt + this.o.display_s + this.o.fade_s) {
        return [decision("expired", slot.cue, now, null)];
      }
      return [decision(action, slot.cue, now, null, reason)];
    }

    retract(msg, now) {
      const k = key(msg.id, msg.t);
      const ref = { id: String(msg.id), t: num(msg.t) === null ? null : round3(msg.t) };
      this.retracted.add(k);
      const reason = String(msg.reason || "withdrawn");
      const slot = this.slot;
      const out = [];
      if (slot && slot.withdrawnAt === null && slot.cue.key === k
          && now < slot.shownAt + this.o.display_s + this.o.fade_s) {
        slot.withdrawnAt = now;
        out.push(decision("retracted", ref, now, null, reason));
      }
      for (const w of this.waiting.filter((w) => w.cue.key === k)) {
        this.waiting.splice(this.waiting.indexOf(w), 1);
        out.push(decision("retracted", ref, now, w.ageS, reason));
      }
      if (!out.length) out.push(decision("ignored", ref, now, null, "not on screen"));
      return out;
    }

    feedback(msg, now) {
      const k = key(msg.cue_id, msg.t);
      const slot = this.slot;
      const out = [];
      if (slot && slot.withdrawnAt === null
          && (slot.cue.key === k || (num(msg.t) === null && slot.cue.id === String(msg.cue_id)))) {
        this.slot = null;
        out.push(decision("cleared", slot.cue, now, null,
          (msg.action || "feedback") + " from another overlay"));
      }
      this.waiting = this.waiting.filter((w) => w.cue.key !== k);
      return out;
    }

    // -- status and lag ----------------------------------------------------------------
    onStatus(msg, now) {
      const st = this.status;
      const lag = num(msg.lag_s);
      if (lag !== null) { st.lagS = Math.max(0, lag); this.clock.lagS = st.lagS; this.clock.anchorAt = now; }
      st.at = now;
      st.degraded = !!msg.degraded;
      const message = msg.message;
      if (["lost", "restored", "ok"].includes(msg.state) && typeof msg.role === "string") {
        if (msg.state === "lost") {
          st.devices.set(msg.role, String(message || "the " + msg.role + " audio is lost"));
        } else {
          st.devices.delete(msg.role);
          if (message) { st.message = String(message); st.messageUntil = now + this.o.message_s; }
        }
      } else if (message && !st.degraded) {
        st.message = String(message); st.messageUntil = now + this.o.message_s;
      }
    }

    lag(now) {
      const st = this.status;
      if (st.lagS === null || !this.inCall || this.connection !== "connected") return null;
      const overdue = Math.max(0, now - st.at - 2 * this.o.status_every_s);
      return st.lagS + overdue;
    }

    // -- the screen --------------------------------------------------------------------
    screen(now) {
      const online = this.connection === "connected";
      const slot = online ? this.slot : null;
      let shown = null;
      if (slot) {
        const fade = slot.withdrawnAt !== null
          ? Math.min(1, (now - slot.withdrawnAt) / Math.max(this.o.withdrawn_s, 1e-9))
          : (now - slot.shownAt - this.o.display_s) / Math.max(this.o.fade_s, 1e-9);
        const c = slot.cue;
        shown = { id: c.id, t: c.t, severity: c.severity, title: c.title, advice: c.advice,
          fade: Math.min(1, Math.max(0, fade)), late_s: slot.lateS,
          withdrawn: slot.withdrawnAt !== null };
      }
      const lag = this.lag(now);
      const lateLag = lag !== null && lag > this.o.lag_warn_s ? lag : null;
      const [status, alert] = this.statusLine(now, shown, lateLag);
      const tag = !shown ? "" : shown.withdrawn ? "withdrawn"
        : shown.late_s === null ? "" : fmt0(shown.late_s) + " s late";
      return { connection: this.connection, cue: shown, headline: this.headline(now), tag: tag,
        status: status, alert: alert, lag_s: lateLag, degraded: online && this.status.degraded,
        pace: this.pace(), talk: this.talkText() };
    }

    headline(now) {
      if (this.connection === "refused") return REFUSED_TEXT;
      if (this.connection === "connecting") return CONNECTING_TEXT;
      if (this.connection === "disconnected") return DISCONNECTED_TEXT;
      if (this.note && now < this.noteUntil) return this.note;
      if (this.inCall) return IDLE_TEXT;
      return this.callEnded ? CALL_ENDED_TEXT : NO_CALL_TEXT;
    }

    statusLine(now, cue, lag) {
      if (this.connection === "refused") {
        return ["Refused: " + (this.refusal || "by the service") + " (check the token)", true];
      }
      if (this.connection !== "connected") return ["No connection to " + this.where, false];
      const st = this.status;
      const parts = [];
      if (this.protocolNote) parts.push(this.protocolNote[0].toUpperCase() + this.protocolNote.slice(1));
      for (const v of st.devices.values()) parts.push(v);
      if (lag !== null) {
        parts.push("Coaching is " + fmt1(lag) + " s behind the call");
      } else if (st.degraded) parts.push("Catching up: lighter recognition");
      if (st.message && now < st.messageUntil && !parts.includes(st.message)) parts.push(st.message);
      if (this.teamNote && this.teamNote[1]) parts.push(this.teamNote[0]);
      if (parts.length) return [parts.join(" · "), true];
      if (cue && cue.withdrawn) return ["Withdrawn: the words after it showed it was wrong", false];
      if (cue && cue.late_s !== null) {
        return ["Late: this came " + fmt0(cue.late_s) + " s after the words", false];
      }
      if (this.teamNote) return [this.teamNote[0], false];
      return ["", false];
    }

    pace() {
      const wpm = this.paceWpm, band = this.paceBand;
      if (!this.inCall || wpm === null || band === null) {
        return { wpm: this.inCall ? wpm : null, band: band, zone: null, far: false };
      }
      const [lo, hi] = band, span = hi - lo;
      const zone = wpm < lo ? "slow" : wpm > hi ? "fast" : "ok";
      return { wpm: wpm, band: band, zone: zone, far: wpm < lo - 0.2 * span || wpm > hi + 0.2 * span };
    }

    talkText() {
      const talk = { agent: this.talk.agent, customer: this.talk.customer };
      const latest = this.clock.latestT;
      for (const [speaker, start] of Object.entries(this.talking)) {
        if (latest !== null && latest > start) talk[speaker] += latest - start;
      }
      const total = talk.agent + talk.customer;
      if (total <= 0) return null;
      const you = Math.round(100 * talk.agent / total);
      return "You " + you + "% · Them " + (100 - you) + "%";
    }
  }

  global.CoachDisplay = { DisplayPolicy: DisplayPolicy, DEFAULTS: DEFAULTS };
})(typeof window !== "undefined" ? window : globalThis);
