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

oauth_caller(scopes) := object.union(caller, {"auth": "oidc", "scopes": scopes})

with_write_scope(doc, scope) := object.union(doc, {"context": object.union(doc.context, {"write_scope": scope})})

test_oauth_write_without_the_write_scope_denied if {
	doc := with_write_scope(object.union(rollback_input("prod", true), {"caller": oauth_caller(["Ops.Read"])}), "Ops.Write")
	d := data.opsgate.decision with input as doc
	d.allow == false
	d.rule == "write.oauth_scope_missing"
	d.reasons[0] == "rollback_deployment is a write tool and needs the OAuth scope Ops.Write; the caller's token has [\"Ops.Read\"]"
}

test_oauth_write_with_the_write_scope_allowed if {
	doc := with_write_scope(object.union(rollback_input("prod", true), {"caller": oauth_caller(["Ops.Read", "Ops.Write"])}), "Ops.Write")
	d := data.opsgate.decision with input as doc
	d.allow == true
}

test_oauth_scope_not_needed_for_reads if {
	doc := with_write_scope(object.union(read_input, {"caller": oauth_caller([])}), "Ops.Write")
	d := data.opsgate.decision with input as doc
	d.allow == true
}

test_no_write_scope_configured_means_no_scope_rule if {
	doc := object.union(rollback_input("prod", true), {"caller": oauth_caller([])})
	d := data.opsgate.decision with input as doc
	d.allow == true
}

test_api_keys_are_judged_by_roles_not_scopes if {
	doc := with_write_scope(object.union(rollback_input("prod", true), {"caller": object.union(caller, {"auth": "api_key"})}), "Ops.Write")
	d := data.opsgate.decision with input as doc
	d.allow == true
}

test_an_approval_does_not_lift_the_scope_rule if {
	doc := with_write_scope(object.union(prod_write, {"caller": oauth_caller([]), "approval": sre_grant}), "Ops.Write")
	d := data.opsgate.decision with input as doc
	d.allow == false
	d.rule == "write.oauth_scope_missing"
	d.require_approval == false
}
