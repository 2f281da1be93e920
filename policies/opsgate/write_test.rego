package opsgate_test

import rego.v1

# Rules are named by full path (data.opsgate...): regorus does not apply `with` through an
# `import data.opsgate` alias.

test_read_only_denies_writes_even_dry_runs if {
	d := data.opsgate.decision with input as with_autonomy(rollback_input("prod", true), "read-only")
	d.allow == false
	d.rule == "write.read_only"
}

test_advised_allows_dry_run_only if {
	d := data.opsgate.decision with input as with_autonomy(rollback_input("prod", true), "advised")
	d.allow == true
	d.rule == "write.dry_run.allowed"
	d.obligations.dry_run_only == true
}

test_advised_denies_real_write_even_approved if {
	doc := object.union(with_autonomy(prod_write, "advised"), {"approval": sre_grant})
	d := data.opsgate.decision with input as doc
	d.allow == false
	d.rule == "write.advised.dry_run_only"
	d.alternative == "call again with dry_run=true"
}

test_approved_allows_dry_run if {
	d := data.opsgate.decision with input as rollback_input("prod", true)
	d.allow == true
	d.obligations.dry_run_only == true
	d.obligations.confirmation_ok == true
}

test_missing_dry_run_flag_is_a_real_write if {
	doc := object.union(prod_write, {"args": {"namespace": "shop", "deployment": "checkout"}})
	d := data.opsgate.decision with input as object.remove(doc, ["approval"])
	d.require_approval == true
}

test_autonomous_allows_real_write_without_approval if {
	d := data.opsgate.decision with input as with_autonomy(prod_write, "autonomous")
	d.allow == true
	d.rule == "write.autonomous.allowed"
	d.obligations.dry_run_only == false
}
