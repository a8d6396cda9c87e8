from payments import refundable


def test_partial_refund_leaves_the_rest():
    assert refundable(1000, 400) == 600


def test_refund_never_goes_negative():
    assert refundable(1000, 1500) == 0
