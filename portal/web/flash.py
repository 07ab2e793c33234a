"""Short notices after a form posts and redirects back ("Reminder sent"). The redirect carries a
code, never free text, so a crafted link cannot put words on our pages."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from litestar.response import Redirect

from portal.lib.i18n import S_

NOTICES = {
    "reminder_sent": ("ok", S_("Reminder sent.")),
    "reminder_already": ("muted", S_("A reminder already went today.")),
    "reminder_refused": ("error", S_("No reminder sent: the member opted out, reminders are paused, or the invoice is settled.")),
    "reminders_paused": ("ok", S_("Reminders paused.")),
    "reminders_resumed": ("ok", S_("Reminders resumed.")),
    "reason_needed": ("error", S_("Give a reason for pausing reminders.")),
    "card_settled": ("ok", S_("Flutterwave answered: the status below is what it said.")),
    "card_waiting": ("muted", S_("Flutterwave has no finished payment for it yet. Check again later, or cancel it.")),
    "card_cancelled": ("ok", S_("Card payment cancelled. If Flutterwave confirms it later, it is still credited.")),
    "card_not_in_flight": ("error", S_("This card payment is no longer waiting.")),
    "paylink_refused": ("error", S_("No pay link made: only an open invoice can have one.")),
    "retry_refused": ("error", S_("Not asked again: only a failed, cancelled or expired M-Pesa request within today's "
                               "limits can be retried. Start a new one from the member's page.")),
    "membership_frozen": ("ok", S_("Membership frozen: its end date moved by the frozen days.")),
    "freeze_ended": ("ok", S_("Freeze ended: the days not used came off the end date.")),
    "renewal_raised": ("ok", S_("Renewal invoice raised: paying it starts the next membership the day after this one ends.")),
    "renewal_exists": ("muted", S_("This membership already has its renewal invoice: here it is.")),
    "plan_changed": ("ok", S_("Plan changed: the unused days were credited to this invoice.")),
    "session_used": ("ok", S_("One session used.")),
    "no_sessions": ("error", S_("No sessions left: sell a session or a pack first.")),
    "discount_given": ("ok", S_("Discount given: the invoice's total is now less by it.")),
    "discount_waiting": ("muted", S_("Discount sent for a manager's approval: the invoice is not final (reminders paused) until it is approved or rejected.")),
    "discount_approved": ("ok", S_("Discount approved and taken off its invoice.")),
    "discount_rejected": ("ok", S_("Discount rejected: the invoice stays as it was.")),
    "promo_created": ("ok", S_("Promo code saved.")),
}


def back_with(path: str, code: str) -> Redirect:
    """Back to a page of ours (a relative path only: not an open redirect) with a notice."""
    parts = urlsplit(path)
    if parts.scheme or parts.netloc or not path.startswith("/"):
        path, parts = "/", urlsplit("/")
    query = "&".join(filter(None, [parts.query, urlencode({"notice": code})]))
    return Redirect(f"{parts.path}?{query}", status_code=303)
