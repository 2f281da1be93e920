package opsgate_test

import rego.v1

# Rules are named by full path (data.opsgate...): regorus does not apply `with` through an
# `import data.opsgate` alias.

test_prod_write_requires_approval if {
	d := data.opsgate.decision with input as prod_write
	d.allow == false
	d.require_approval == true
	d.approvers == ["sre"]
	d.approvals_needed == 1
	d.alternative == "call again with dry_run=true"
	d.rule == "write.prod.requires_approval"
	d.obligations.confirmation_ok == false
}

test_staging_write_requires_approval_confirmation_ok if {
	d := data.opsgate.decision with input as rollback_input("staging", false)
	d.require_approval == true
	d.rule == "write.requires_approval"
	d.obligations.confirmation_ok == true
}

test_approvers_come_from_data if {
	d := data.opsgate.decision with input as prod_write with data.opsgate_config.approver_roles as ["oncall-lead"]
	d.approvers == ["oncall-lead"]
}

test_grant_by_sre_allows_prod_write if {
	d := data.opsgate.decision with input as object.union(prod_write, {"approval": sre_grant})
	d.allow == true
	d.rule == "write.approved"
}

test_self_approval_denied if {
	grant := object.union(sre_grant, {"granted_by": caller.subject})
	d := data.opsgate.decision with input as object.union(prod_write, {"approval": grant})
	d.allow == false
	d.rule == "write.approval.self_approved"
	d.require_approval == false
}

test_grant_by_a_list_holding_the_requester_denied if {
	grant := object.union(sre_grant, {"granted_by": [caller.subject, "alice"]})
	d := data.opsgate.decision with input as object.union(prod_write, {"approval": grant})
	d.allow == false
}

test_grant_without_grantor_denied if {
	grant := object.remove(sre_grant, ["granted_by"])
	d := data.opsgate.decision with input as object.union(prod_write, {"approval": grant})
	not d.allow == true
}

test_grant_without_approver_role_denied if {
	grant := object.union(sre_grant, {"roles": ["developer"]})
	d := data.opsgate.decision with input as object.union(prod_write, {"approval": grant})
	d.allow == false
	d.rule == "write.approval.role_not_approver"
}

test_confirmation_never_approves_prod_write if {
	confirmation := {"id": "apr_2", "granted_by": "someone", "roles": ["sre"], "kind": "confirmation", "channel": "confirmation"}
	d := data.opsgate.decision with input as object.union(prod_write, {"approval": confirmation})
	d.allow == false
	d.rule == "write.approval.confirmation_not_enough"
}

test_confirmation_approves_staging_write if {
	confirmation := {"id": "apr_2", "granted_by": "someone", "roles": [], "kind": "confirmation", "channel": "confirmation"}
	d := data.opsgate.decision with input as object.union(rollback_input("staging", false), {"approval": confirmation})
	d.allow == true
	d.rule == "write.confirmed"
}

test_unknown_environment_counts_as_production if {
	confirmation := {"id": "apr_2", "granted_by": "someone", "roles": [], "kind": "confirmation", "channel": "confirmation"}
	doc := object.union(rollback_input("", false), {"approval": confirmation})
	d := data.opsgate.decision with input as doc
	d.allow == false
}

test_unknown_approval_kind_denied if {
	grant := object.union(sre_grant, {"kind": "vibes"})
	d := data.opsgate.decision with input as object.union(prod_write, {"approval": grant})
	d.allow == false
	d.rule == "write.approval.unknown_kind"
}

test_oidc_grant_allows_prod_write if {
	grant := object.union(sre_grant, {"channel": "oidc"})
	d := data.opsgate.decision with input as object.union(prod_write, {"approval": grant})
	d.allow == true
	d.rule == "write.approved"
}

test_grant_without_channel_denied if {
	grant := object.remove(sre_grant, ["channel"])
	d := data.opsgate.decision with input as object.union(prod_write, {"approval": grant})
	d.allow == false
	d.rule == "write.approval.channel_not_accepted"
}

test_unknown_channel_denied if {
	grant := object.union(sre_grant, {"channel": "hmac"})
	d := data.opsgate.decision with input as object.union(prod_write, {"approval": grant})
	d.allow == false
	d.rule == "write.approval.channel_not_accepted"
}

test_grant_claiming_confirmation_channel_denied_in_staging if {
	grant := object.union(sre_grant, {"channel": "confirmation"})
	d := data.opsgate.decision with input as object.union(rollback_input("staging", false), {"approval": grant})
	d.allow == false
	d.rule == "write.approval.channel_mismatch"
}

test_channels_per_environment_come_from_data if {
	channels := {"production": ["oidc"], "other": ["ssh-signature"]}
	signed := data.opsgate.decision with input as object.union(prod_write, {"approval": sre_grant})
		with data.opsgate_config.approval_channels as channels
	signed.rule == "write.approval.channel_not_accepted"
	confirmation := {"id": "apr_2", "granted_by": "someone", "roles": [], "kind": "confirmation", "channel": "confirmation"}
	staging := data.opsgate.decision with input as object.union(rollback_input("staging", false), {"approval": confirmation})
		with data.opsgate_config.approval_channels as channels
	staging.rule == "write.approval.confirmation_not_enough"
}
