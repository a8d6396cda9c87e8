"""Refunds: never more than what is left of a charge."""


def refundable(amount_cents: int, refunded_cents: int) -> int:
    """How much of a charge can still be refunded."""
    return max(amount_cents - refunded_cents, 0)
