#!/usr/bin/env bash
# Adding someone to an organization asks them first: the invitee gets an
# invitation (inbox and email) and is a member only once they accept. The
# organization's name is chosen by whoever made it, so it stays out of the
# email's subject and is quoted in its text.
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/lib/notifications.sh"
bh_start

new_user victim
VICTIM=$TOKEN VICTIM_EMAIL=$EMAIL
new_user attacker
ATTACKER=$TOKEN
BAIT='Your account is locked: pay at http://evil.example =?UTF-8?B?SGk=?='
new_org "$BAIT"
ORG=$NEW_ORG_ID

api POST "/v1/orgs/$ORG/members" "{\"email\":\"$VICTIM_EMAIL\"}"
expect 201 "invite"
[ "$(jget .status)" = pending ] || fail "invite: $BODY"
INV=$(jget .id)
TOKEN=$VICTIM api GET "/v1/orgs/$ORG"
expect 404 "the invitee before answering"
TOKEN=$ATTACKER api GET "/v1/orgs/$ORG/members"
[ "$(jget '.data | length')" = 1 ] || fail "members before the answer: $BODY"
pass "inviting someone makes no membership (the invitee gets 404, the org has one member)"

TOKEN=$VICTIM eventually 10 notif_has 1 member.invited || fail "no member.invited notification"
TOKEN=$VICTIM notif_count limit=100 'select(.type == "member.invited")' >/dev/null
jq -e --arg i "$INV" --arg o "$ORG" '[.data[] | select(.type == "member.invited")][0] |
    .data.invitation_id == $i and .data.org_id == $o and
    .title == "You have an invitation to an organization"' <<<"$BODY" >/dev/null ||
    fail "member.invited: $BODY"
eventually 10 has_mail "$VICTIM_EMAIL" || fail "no email to the invitee"
mail=""
for f in $(mail_to "$VICTIM_EMAIL"); do
    [ "$(mail_header "$f" Subject)" = "You have an invitation to an organization" ] && mail=$f
done
[ -n "$mail" ] || fail "no invitation email; subjects: $(for f in $(mail_to "$VICTIM_EMAIL"); do mail_header "$f" Subject; done)"
grep -a '^Subject:' "$mail" | grep -q 'evil' && fail "the org name reached the raw subject"
text=$(mail_part "$mail" text/plain)
grep -qF "the organization \"$BAIT\"" <<<"$text" || fail "the org name is not quoted: $text"
pass "the invitation reaches the inbox and email; the subject is fixed text and the org name is quoted in the body"

TOKEN=$VICTIM api POST "/v1/me/invitations/$INV/decline"
expect 204 "decline"
TOKEN=$VICTIM api GET "/v1/orgs/$ORG"
expect 404 "after declining"
TOKEN=$VICTIM api GET /v1/me/invitations
[ "$(jget '.data | length')" = 0 ] || fail "declined still listed: $BODY"
pass "a declined invitation leaves the invitee outside the organization"
