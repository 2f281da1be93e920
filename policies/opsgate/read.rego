# Reads: any authenticated caller, with item caps and redaction; raw queries and costly queries are limited.
package opsgate

import rego.v1

# Positive evidence for a grant: this is a read and every read check passed.
read_checks_passed if {
	is_read
	_raw_query_verdict == "pass"
	_points_verdict == "pass"
}

unevaluated contains "read.raw_query.role_required" if {
	is_read
	not _raw_query_verdict
}

unevaluated contains "read.point_budget_exceeded" if {
	is_read
	not _points_verdict
}

# Facts: true or false when they can be computed, undefined when not.

# A raw query is any `raw_query` that is not null or blank (a non-string one counts as raw).
raw_query_requested := false if {
	is_object(input.args)
	object.get(input.args, "raw_query", null) == null
} else := false if {
	is_string(input.args.raw_query)
	trim_space(input.args.raw_query) == ""
} else := true if {
	is_object(input.args)
}

raw_query_roles := {r | some r in config.raw_query_roles; is_string(r)}

has_raw_query_role := count(caller_roles & raw_query_roles) > 0

# 0 without facts; undefined when the facts are not an object (object.get on anything else is an error
# on OPA).
estimated_points := object.get(input.facts, "estimated_points", 0) if {
	is_object(input.facts)
} else := 0 if {
	not input.facts
}

_raw_query_verdict := "pass" if {
	raw_query_requested == false
} else := "pass" if {
	raw_query_requested == true
	has_raw_query_role == true
} else := "deny" if {
	raw_query_requested == true
	has_raw_query_role == false
}

_points_verdict := "pass" if {
	is_number(estimated_points)
	is_number(config.max_points)
	estimated_points <= config.max_points
} else := "deny" if {
	is_number(estimated_points)
	is_number(config.max_points)
	estimated_points > config.max_points
}

# Grants name the tool, so they need one (a tool that is not a name is granted nothing).
read_grants contains grant(100, "read.allowed", sprintf("%v is a read; authenticated callers may read", [input.tool]), false) if {
	is_read
	authenticated
	is_string(input.tool)
}

read_denials contains deny(40, "read.raw_query.role_required", sprintf("raw backend queries need one of the roles %v; the caller has %v", [quoted_list(sort(raw_query_roles)), quoted_list(sort(caller_roles))]), "use the typed filter fields (service, selector, severity, text) instead of raw_query") if {
	_raw_query_verdict == "deny"
}

read_denials contains deny(41, "read.point_budget_exceeded", sprintf("the query would return about %v points, over the limit of %v", [show(estimated_points), show(config.max_points)]), "narrow the window or raise the step") if {
	_points_verdict == "deny"
}
