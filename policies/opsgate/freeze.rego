# Change-freeze windows: no real write lands in a frozen environment, approved or not.
#
# A window whose times do not parse as RFC 3339 (a plain date, a time without a zone) has no state, so
# the freeze check has no verdict and every real write is denied until the data is fixed (the data
# schema refuses such a window at load; this holds when the data reached OPA some other way).
package opsgate

import rego.v1

verdicts contains ["write.freeze", _freeze_verdict] if is_write

freeze_windows := windows if {
	windows := object.get(config, "freeze_windows", [])
	is_array(windows)
}

_window_applies(w) if {
	some env in w.environments
	env in {environment, "*"}
}

# "active", "inactive", or undefined when the window cannot be evaluated.
_window_state(w) := "active" if {
	_window_applies(w)
	parse_time_ns(w.start) <= now_ns
	now_ns < parse_time_ns(w.end)
} else := "inactive" if {
	is_string(environment)
	is_number(parse_time_ns(w.start))
	is_number(parse_time_ns(w.end))
	is_number(now_ns)
	is_array(w.environments)
}

_freeze_states := [s | some w in freeze_windows; s := _window_state(w)]

active_freezes contains w if {
	some w in freeze_windows
	_window_state(w) == "active"
}

_freeze_verdict := "pass" if {
	dry_run
} else := "deny" if {
	count(active_freezes) > 0
} else := "pass" if {
	count(_freeze_states) == count(freeze_windows)
	every s in _freeze_states {
		s == "inactive"
	}
}

real_write_denials contains deny(55, "write.freeze", sprintf("%v is in a change freeze until %v: %v", [environment, w.end, w.reason]), "call again with dry_run=true, or wait until the freeze ends") if {
	verdict["write.freeze"] == "deny"
	some w in active_freezes
}
