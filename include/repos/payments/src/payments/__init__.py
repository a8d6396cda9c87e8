"""Card payments: fees and refunds, in integer cents."""

from payments.fees import processing_fee, total_charge
from payments.refunds import refundable

__all__ = ["processing_fee", "refundable", "total_charge"]
