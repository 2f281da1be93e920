package opsgate_test

import rego.v1

# Rules are named by full path (data.opsgate...): regorus does not apply `with` through an
# `import data.opsgate` alias.

test_decision_has_every_field if {
	d := data.opsgate.decision with input as read_input
	every key in ["allow", "reasons", "require_approval", "approvers", "approvals_needed", "alternative", "rule", "obligations"] {
		key in object.keys(d)
	}
}

test_default_deny_for_unknown_scope if {
	d := data.opsgate.decision with input as object.union(read_input, {"scope": "admin"})
	d.allow == false
	d.rule == "default.deny"
	count(d.reasons) == 1
}

test_unauthenticated_caller_denied_reads if {
	d := data.opsgate.decision with input as object.union(read_input, {"caller": {"subject": "x", "roles": [], "authenticated": false}})
	d.allow == false
	d.rule == "caller.unauthenticated"
}

test_unauthenticated_caller_denied_dry_runs if {
	doc := object.union(rollback_input("prod", true), {"caller": {"subject": "x", "roles": ["sre"], "authenticated": false}})
	d := data.opsgate.decision with input as doc
	d.allow == false
	d.rule == "caller.unauthenticated"
}

test_unknown_autonomy_denied if {
	d := data.opsgate.decision with input as with_autonomy(read_input, "yolo")
	d.allow == false
	d.rule == "autonomy.unknown"
}

test_missing_autonomy_defaults_to_approved if {
	doc := object.remove(prod_write, ["context"])
	d := data.opsgate.decision with input as object.union(doc, {"context": {"now": now, "recent": prod_write.context.recent}})
	d.rule == "write.prod.requires_approval"
}

test_context_that_is_not_an_object_denies if {
	d := data.opsgate.decision with input as object.union(read_input, {"context": "approved"})
	d.allow == false
}

test_check_without_verdict_names_the_check if {
	d := data.opsgate.decision with input as read_input with data.opsgate_config.max_points as null
	d.allow == false
	d.rule == "policy.check_failed"
	contains(d.reasons[0], "read.point_budget_exceeded")
}

test_every_applicable_check_reaches_a_verdict if {
	every doc in [read_input, prod_write, rollback_input("staging", true)] {
		unevaluated := data.opsgate.unevaluated with input as doc
		count(unevaluated) == 0
	}
}
