package opsgate_test

import rego.v1

# Rules are named by full path (data.opsgate...): regorus does not apply `with` through an
# `import data.opsgate` alias.

test_read_allowed_with_obligations if {
	d := data.opsgate.decision with input as read_input
	d.allow == true
	d.rule == "read.allowed"
	d.obligations.max_items == 200
	d.obligations.redact == true
	count(d.obligations.redact_patterns) > 0
	d.obligations.dry_run_only == false
}

test_max_items_comes_from_data if {
	d := data.opsgate.decision with input as read_input with data.opsgate_config.max_items as 50
	d.obligations.max_items == 50
}

test_raw_query_denied_without_role if {
	doc := object.union(read_input, {"args": {"raw_query": "sum(rate(http_requests_total[5m]))"}})
	d := data.opsgate.decision with input as doc
	d.allow == false
	d.rule == "read.raw_query.role_required"
	contains(d.alternative, "typed filter")
}

test_raw_query_allowed_for_sre if {
	doc := object.union(read_input, {"args": {"raw_query": "{app=\"checkout\"} |= \"error\""}, "caller": object.union(caller, {"roles": ["sre"]})})
	d := data.opsgate.decision with input as doc
	d.allow == true
	d.rule == "read.allowed"
}

test_blank_raw_query_is_not_raw if {
	d := data.opsgate.decision with input as object.union(read_input, {"args": {"raw_query": "   "}})
	d.allow == true
}

test_point_budget_exceeded_denied_with_alternative if {
	doc := object.union(read_input, {"tool": "metrics_query", "facts": {"estimated_points": 50000}})
	d := data.opsgate.decision with input as doc
	d.allow == false
	d.rule == "read.point_budget_exceeded"
	d.alternative == "narrow the window or raise the step"
}

test_point_budget_within_limit_allowed if {
	d := data.opsgate.decision with input as object.union(read_input, {"facts": {"estimated_points": 11000}})
	d.allow == true
}

test_reads_allowed_under_read_only if {
	d := data.opsgate.decision with input as with_autonomy(read_input, "read-only")
	d.allow == true
}

test_raw_query_that_is_not_a_string_counts_as_raw if {
	d := data.opsgate.decision with input as object.union(read_input, {"args": {"raw_query": ["up"]}})
	d.allow == false
	d.rule == "read.raw_query.role_required"
}

test_point_limit_that_is_not_a_number_denies if {
	doc := object.union(read_input, {"facts": {"estimated_points": 50000}})
	d := data.opsgate.decision with input as doc with data.opsgate_config.max_points as "11000"
	d.allow == false
	d.rule == "policy.check_failed"
}

# incident_triage is a read like any other: allowed to an authenticated caller, with the read obligations,
# and denied to an unauthenticated one (issue 13).
triage_input := object.union(read_input, {
	"tool": "incident_triage", "capability": "triage",
	"args": {"namespace": "shop", "since": "1h", "lookback": "6h", "limit": 5},
	"target": {"environment": "prod", "namespace": "shop", "service": null},
})

test_incident_triage_is_an_allowed_read if {
	d := data.opsgate.decision with input as triage_input
	d.allow == true
	d.rule == "read.allowed"
	d.obligations.redact == true
}

test_incident_triage_needs_an_authenticated_caller if {
	doc := object.union(triage_input, {"caller": object.union(caller, {"authenticated": false})})
	d := data.opsgate.decision with input as doc
	d.allow == false
}
