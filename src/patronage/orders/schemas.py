from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class OrderItemRead(BaseModel):
    product_id: int
    product_name: str | None
    quantity: int
    unit_price: str
    discount: str


class PaymentRead(BaseModel):
    method: str
    status: str
    amount: str
    created_at: datetime


class ShipmentRead(BaseModel):
    carrier: str
    tracking_number: str | None
    status: str
    shipped_at: datetime | None
    promised_at: datetime | None
    delivered_at: datetime | None


class ReturnRead(BaseModel):
    order_item_id: int | None
    quantity: int
    reason: str | None
    status: str
    requested_at: datetime


class RefundRead(BaseModel):
    amount: str
    reason: str | None
    created_at: datetime


class OrderRead(BaseModel):
    id: int
    external_id: str
    status: str
    channel: str | None
    currency: str
    total: str
    discount: str
    placed_at: datetime
    items: list[OrderItemRead]
    payments: list[PaymentRead]
    shipments: list[ShipmentRead]
    returns: list[ReturnRead]
    refunds: list[RefundRead]
