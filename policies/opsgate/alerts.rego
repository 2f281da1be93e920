# alert_silence: a silence is bounded by policy data and never matches everything.
#
# The server's facts say how long the silence lasts (duration_s) and whether its matchers would match
# every alert (matches_everything). Both must be known and within policy: missing or malformed facts
# deny (fail closed), like any check without positive evidence. Confirmation outside production and
# approval in production come from approvals.rego, as for every write.
package opsgate

import rego.v1

_is_silence if input.tool == "alert_silence"

_silence_facts := object.get(input, "facts", {})

silence_max_s := config.alert_silence_max_s.production if production

silence_max_s := config.alert_silence_max_s["default"] if not production

_silence_duration := d if {
	is_object(_silence_facts)
	d := object.get(_silence_facts, "duration_s", null)
	is_number(d)
}

_silence_within_limit if {
	is_number(silence_max_s)
	_silence_duration <= silence_max_s
}

_silence_scoped if _silence_facts.matches_everything == false

_too_long_reason := sprintf("a silence of %v s is longer than the %v s this policy allows in %v", [show(_silence_duration), show(silence_max_s), _env_name]) if {
	is_number(_silence_duration)
	is_number(silence_max_s)
} else := "the silence's duration could not be checked against the policy maximum (missing facts or policy data)"

_env_name := "production" if {
	production
} else := sprintf("environment %q", [environment]) if {
	is_string(environment)
} else := "this environment"

write_denials contains deny(62, "alerts.silence.too_long", _too_long_reason, sprintf("use a duration of at most %v", [_max_minutes])) if {
	_is_silence
	not _silence_within_limit
}

_max_minutes := sprintf("%v minutes", [floor(silence_max_s / 60)]) if {
	is_number(silence_max_s)
} else := "the policy's maximum"

write_denials contains deny(63, "alerts.silence.matches_everything", "the matchers would silence every alert (or whether they would could not be established)", "add an equality matcher such as alertname=... or namespace=...") if {
	_is_silence
	not _silence_scoped
}
