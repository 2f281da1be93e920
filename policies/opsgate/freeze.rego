# Change-freeze windows: no real write lands in a frozen environment, approved or not.
#
# A window whose times do not parse as RFC 3339 (a plain date, a time without a zone) has no state, so
# the freeze check has no verdict and every real write is denied until the data is fixed (the data
# schema refuses such a window at load; this holds when the data reached OPA some other way).
package opsgate

import rego.v1

unevaluated contains "write.freeze" if {
	is_write
	not _freeze_verdict
}

freeze_windows := windows if {
	windows := object.get(config, "freeze_windows", [])
	is_array(windows)
}

_window_applies(w) if {
	is_string(environment)
	some env in w.environments
	env in {environment, "*"}
}

# Each window with its state, "active" or "inactive"; a window that cannot be evaluated has no state.
# Its times are parsed once per decision.
_window_states := [[w, state] |
	some w in freeze_windows
	state := _window_state(w, parse_time_ns(w.start), parse_time_ns(w.end))
	is_string(state) # regorus's VM otherwise keeps an undefined state in the list
]

_window_state(w, start, end) := "active" if {
	start <= now_ns
	now_ns < end
	_window_applies(w)
} else := "inactive" if {
	# start and end are numbers here (parse_time_ns values; a call with an undefined one has no value)
	_environment_known
	now_ns # defined
	is_array(w.environments)
}

active_freezes contains w if {
	some [w, state] in _window_states
	state == "active"
}

# Every window has a state and none is active, or one is active: the branches exclude each other.
_freeze_verdict := "pass" if {
	dry_run
} else := "pass" if {
	count(_window_states) == count(freeze_windows)
	every pair in _window_states {
		pair[1] == "inactive"
	}
} else := "deny" if {
	count(active_freezes) > 0
}

real_write_denials contains deny(55, "write.freeze", reason, "call again with dry_run=true, or wait until the freeze ends") if {
	_freeze_verdict == "deny"
	some w in active_freezes
	reason := sprintf("%v is in a change freeze until %v: %v", [environment, w.end, show(w.reason)])
}
