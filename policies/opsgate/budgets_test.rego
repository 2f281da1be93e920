package opsgate_test

import rego.v1

with_recent(doc, target_1h, global_1m) := object.union(doc, {"context": object.union(doc.context, {"recent": {"rollback_deployment": {"target_1h": target_1h, "global_1m": global_1m, "target_last_s": null}}})})

last_write_ago(doc, seconds) := object.union(doc, {"context": object.union(doc.context, {"recent": {"rollback_deployment": {"target_last_s": seconds}}})})

test_rollback_target_budget_denies if {
	d := data.opsgate.decision with input as with_recent(with_autonomy(prod_write, "autonomous"), 3, 0)
	d.allow == false
	d.rule == "write.budget.target_1h"
}

test_rollback_under_target_budget_allowed if {
	d := data.opsgate.decision with input as with_recent(with_autonomy(prod_write, "autonomous"), 2, 0)
	d.allow == true
}

test_global_budget_denies if {
	d := data.opsgate.decision with input as with_recent(object.union(prod_write, {"approval": sre_grant}), 0, 5)
	d.allow == false
	d.rule == "write.budget.global_1m"
}

test_budgets_do_not_limit_dry_runs if {
	d := data.opsgate.decision with input as with_recent(rollback_input("prod", true), 99, 99)
	d.allow == true
}

test_budget_limits_come_from_data if {
	d := data.opsgate.decision with input as with_recent(with_autonomy(prod_write, "autonomous"), 1, 0) with data.opsgate_config.budgets.rollback_deployment.target_1h as 1
	d.rule == "write.budget.target_1h"
}

test_strongest_denial_decides_and_all_reasons_listed if {
	doc := with_autonomy(with_recent(prod_write, 5, 9), "advised")
	d := data.opsgate.decision with input as doc
	d.rule == "write.budget.target_1h"
	count(d.reasons) == 3
}

test_budget_that_is_not_a_number_denies if {
	d := data.opsgate.decision with input as with_autonomy(prod_write, "autonomous") with data.opsgate_config.budgets.rollback_deployment.target_1h as "3"
	d.allow == false
	d.rule == "policy.check_failed"
}

test_missing_counts_deny_real_writes if {
	doc := with_autonomy(prod_write, "autonomous")
	no_counts := object.union(object.remove(doc, ["context"]), {"context": object.remove(doc.context, ["recent"])})
	d := data.opsgate.decision with input as no_counts
	d.allow == false
	d.rule == "policy.check_failed"
}

test_write_within_the_target_interval_denies if {
	d := data.opsgate.decision with input as last_write_ago(with_autonomy(prod_write, "autonomous"), 120.4)
	d.allow == false
	d.rule == "write.budget.target_interval"
	d.reasons[0] == "rollback_deployment ran on this target 120 s ago; the budget allows one every 600 s"
	d.alternative == "wait 480 s, or escalate to a human"
}

test_write_after_the_target_interval_allowed if {
	d := data.opsgate.decision with input as last_write_ago(with_autonomy(prod_write, "autonomous"), 600)
	d.allow == true
}

test_allowed_real_write_carries_its_budget if {
	d := data.opsgate.decision with input as with_autonomy(prod_write, "autonomous")
	d.obligations.budget == {"target_interval_s": 600, "target_1h": 3, "global_1m": 5}
}

test_default_budget_for_tools_not_named if {
	doc := object.union(with_autonomy(prod_write, "autonomous"), {"tool": "service_restart", "context": {"recent": {"service_restart": {"target_1h": 0, "global_1m": 0, "target_last_s": null}}}})
	d := data.opsgate.decision with input as doc
	d.allow == true
	d.obligations.budget == {"target_interval_s": 600, "target_1h": 10, "global_1m": 5}
}

test_dry_runs_and_reads_carry_no_budget if {
	dry := data.opsgate.decision with input as rollback_input("prod", true)
	dry.obligations.budget == null
	read := data.opsgate.decision with input as read_input
	read.obligations.budget == null
}
