# Reads: any authenticated caller, with item caps and redaction; raw queries and costly queries are limited.
package opsgate

import rego.v1

raw_query if {
	is_string(input.args.raw_query)
	trim_space(input.args.raw_query) != ""
}

read_grants contains grant(100, "read.allowed", sprintf("%v is a read; authenticated callers may read", [input.tool]), false) if {
	is_read
	authenticated
}

read_denials contains deny(40, "read.raw_query.role_required", sprintf("raw backend queries need one of the roles %v; the caller has %v", [sort(config.raw_query_roles), sort(caller_roles)]), "use the typed filter fields (service, selector, severity, text) instead of raw_query") if {
	is_read
	raw_query
	count(caller_roles & {r | some r in config.raw_query_roles}) == 0
}

read_denials contains deny(41, "read.point_budget_exceeded", sprintf("the query would return about %v points, over the limit of %v", [input.facts.estimated_points, config.max_points]), "narrow the window or raise the step") if {
	is_read
	input.facts.estimated_points > config.max_points
}
