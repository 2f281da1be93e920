# Approvals for real writes under the "approved" autonomy level.
#
# The server verifies who granted an approval before the policy sees it, and says how in
# `input.approval.channel`: "ssh-signature" (the approver's SSH key, listed in approvers.yaml),
# "oidc" (the hosted approval page's login) or "confirmation" (a form accept in the client, which
# proves only that someone clicked). Which channels count where is decided here:
# data.opsgate_config.approval_channels.{production,other}, by default signed or OIDC approvals only
# in production, and a client confirmation as well elsewhere.
package opsgate

import rego.v1

approval_denials := _approval_denials if needs_approval
else := set()

approval_grants := _approval_grants if needs_approval
else := set()

needs_approval if {
	real_write
	autonomy == "approved"
}

approval_kind := object.get(input.approval, "kind", "grant") if has_approval

approval_roles := {r | some r in object.get(input.approval, "roles", []); is_string(r)} if has_approval

approval_channel := object.get(input.approval, "channel", "") if has_approval

default_approval_channels := {
	"production": ["ssh-signature", "oidc"],
	"other": ["ssh-signature", "oidc", "confirmation"],
}

_channel_class := "production" if production
else := "other"

# approval_channels that is not an object accepts nothing (object.get with a path answers the default).
_accepted_channel_list := object.get(config, ["approval_channels", _channel_class], []) if {
	config.approval_channels
} else := default_approval_channels[_channel_class]

accepted_channels := {c | some c in _accepted_channel_list; is_string(c)}

channel_accepted if approval_channel in _accepted_channel_list

# Only a grant by a named person other than the requester counts; a grantor that is missing, not a
# string (a list holding the requester, say) or the requester is a self-approval.
granted_by_other if {
	is_string(input.approval.granted_by)
	is_string(input.caller.subject)
	input.approval.granted_by != input.caller.subject
}

self_approval if {
	has_approval
	not granted_by_other
}

valid_grant if {
	approval_kind == "grant"
	approval_channel in {"ssh-signature", "oidc"}
	channel_accepted
	not self_approval
	count(approval_roles & approver_roles) > 0
}

valid_confirmation if {
	approval_kind == "confirmation"
	approval_channel == "confirmation"
	channel_accepted
}

# The approval's id and grantor as reasons show them (either may be missing or of any type).
_approval_id := input.approval.id if {
	is_string(input.approval.id)
} else := show(object.get(input.approval, "id", "(no id)")) if has_approval

_granted_by := input.approval.granted_by if {
	is_string(input.approval.granted_by)
} else := show(object.get(input.approval, "granted_by", "nobody")) if has_approval

_approval_target := "production" if production
else := sprintf("environment %q", [environment])

_approval_denials contains {
	"priority": 90,
	"rule": rule,
	"reason": sprintf("%v in %v needs approval by role %v", [tool_name, _approval_target, concat(" or ", sort(approver_roles))]),
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
else := "write.requires_approval"

_approval_denials contains deny(80, "write.approval.self_approved", sprintf("approval %v was granted by %v, who made the request; nobody approves their own request", [_approval_id, _granted_by]), "ask another person with the approver role to grant it") if {
	needs_approval
	has_approval
	approval_kind == "grant"
	self_approval
}

_approval_denials contains deny(81, "write.approval.confirmation_not_enough", sprintf("a client confirmation does not approve a write of %v in %v; it needs a grant by role %v signed with the approver's key or made on the approval page", [tool_name, _approval_target, concat(" or ", sort(approver_roles))]), "request an approval and have an approver grant it, or call again with dry_run=true") if {
	needs_approval
	has_approval
	approval_kind == "confirmation"
	not channel_accepted
}

_approval_denials contains deny(84, "write.approval.channel_not_accepted", sprintf("approval %v came through channel %v, which does not count for %v (accepted: %v)", [_approval_id, quoted(approval_channel), _approval_target, concat(", ", sort(accepted_channels))]), "have an approver grant it with their SSH key or on the approval page") if {
	needs_approval
	has_approval
	approval_kind == "grant"
	not channel_accepted
}

_approval_denials contains deny(85, "write.approval.channel_mismatch", sprintf("approval %v is a %v but came through channel %v", [_approval_id, show(approval_kind), quoted(approval_channel)]), "request a new approval") if {
	needs_approval
	has_approval
	channel_accepted
	approval_kind == "grant"
	approval_channel == "confirmation"
}

_approval_denials contains deny(82, "write.approval.role_not_approver", sprintf("approval %v was granted with roles %v; it needs one of %v", [_approval_id, quoted_list(sort(approval_roles)), quoted_list(sort(approver_roles))]), "have a person with an approver role grant the approval") if {
	needs_approval
	has_approval
	approval_kind == "grant"
	not self_approval
	count(approval_roles & approver_roles) == 0
}

_approval_denials contains deny(83, "write.approval.unknown_kind", sprintf("approval kind %v is not grant or confirmation", [quoted(approval_kind)]), "request a new approval") if {
	needs_approval
	has_approval
	not approval_kind in {"grant", "confirmation"}
}

# A grant names the approval and its grantor (a string: see granted_by_other), so it needs an id that is one.
_approval_grants contains grant(120, "write.approved", sprintf("approval %v granted by %v", [input.approval.id, input.approval.granted_by]), false) if {
	needs_approval
	authenticated
	valid_grant
	is_string(input.approval.id)
}

_approval_grants contains grant(121, "write.confirmed", sprintf("confirmed in the client; confirmation is enough for %v", [_approval_target]), false) if {
	needs_approval
	authenticated
	valid_confirmation
}
