from payments import processing_fee, total_charge


def test_fee_is_percentage_plus_fixed_fee():
    assert processing_fee(1000) == 59


def test_zero_amount_pays_only_the_fixed_fee():
    assert processing_fee(0) == 30


def test_total_charge_includes_the_fee():
    assert total_charge(2500) == 2603
