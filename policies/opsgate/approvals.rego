# Approvals for real writes under the "approved" autonomy level.
package opsgate

import rego.v1

approval_denials := _approval_denials if needs_approval

approval_denials := set() if not needs_approval

approval_grants := _approval_grants if needs_approval

approval_grants := set() if not needs_approval

needs_approval if {
	real_write
	autonomy == "approved"
}

approval_kind := object.get(input.approval, "kind", "grant") if has_approval

approval_roles := {r | some r in object.get(input.approval, "roles", [])} if has_approval

self_approval if input.approval.granted_by == input.caller.subject

valid_grant if {
	approval_kind == "grant"
	not self_approval
	count(approval_roles & approver_roles) > 0
}

valid_confirmation if {
	approval_kind == "confirmation"
	not production
}

_approval_target := "production" if production

_approval_target := sprintf("environment %q", [environment]) if not production

_approval_denials contains {
	"priority": 90,
	"rule": rule,
	"reason": sprintf("%v in %v needs approval by role %v", [input.tool, _approval_target, concat(" or ", sort(approver_roles))]),
	"alternative": "call again with dry_run=true",
	"require_approval": true,
	"approvers": sort(approver_roles),
	"approvals_needed": config.approvals_needed,
} if {
	needs_approval
	not has_approval
	rule := _approval_rule
}

_approval_rule := "write.prod.requires_approval" if production

_approval_rule := "write.requires_approval" if not production

_approval_denials contains deny(80, "write.approval.self_approved", sprintf("approval %v was granted by %v, who made the request; nobody approves their own request", [input.approval.id, input.approval.granted_by]), "ask another person with the approver role to grant it") if {
	needs_approval
	has_approval
	approval_kind == "grant"
	self_approval
}

_approval_denials contains deny(81, "write.approval.confirmation_not_enough", sprintf("a client confirmation does not approve a production write of %v; it needs a grant by role %v", [input.tool, concat(" or ", sort(approver_roles))]), "request an approval and have an approver grant it, or call again with dry_run=true") if {
	needs_approval
	has_approval
	approval_kind == "confirmation"
	production
}

_approval_denials contains deny(82, "write.approval.role_not_approver", sprintf("approval %v was granted with roles %v; it needs one of %v", [input.approval.id, sort(approval_roles), sort(approver_roles)]), "have a person with an approver role grant the approval") if {
	needs_approval
	has_approval
	approval_kind == "grant"
	not self_approval
	count(approval_roles & approver_roles) == 0
}

_approval_denials contains deny(83, "write.approval.unknown_kind", sprintf("approval kind %q is not grant or confirmation", [approval_kind]), "request a new approval") if {
	needs_approval
	has_approval
	not approval_kind in {"grant", "confirmation"}
}

_approval_grants contains grant(120, "write.approved", sprintf("approval %v granted by %v", [input.approval.id, input.approval.granted_by]), false) if {
	needs_approval
	authenticated
	valid_grant
}

_approval_grants contains grant(121, "write.confirmed", sprintf("confirmed in the client; confirmation is enough for %v", [_approval_target]), false) if {
	needs_approval
	authenticated
	valid_confirmation
}
