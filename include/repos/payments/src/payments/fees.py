"""Card processing fees. Amounts are integer cents; a basis point is 1/10000."""

FEE_BASIS_POINTS = 290  # 2.90 %
FIXED_FEE_CENTS = 30


def processing_fee(amount_cents: int) -> int:
    """The fee for a charge: 2.90 % of the amount, rounded half up to a cent, plus 30 cents."""
    percent_part = (amount_cents * FEE_BASIS_POINTS + 500) // 1000
    return percent_part + FIXED_FEE_CENTS


def total_charge(amount_cents: int) -> int:
    """What the customer pays: the amount plus its processing fee."""
    return amount_cents + processing_fee(amount_cents)
