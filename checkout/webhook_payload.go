package checkout

import (
	"context"

	"promopool/offers"
)

// WebhookItem is one line of a webhook's order.
type WebhookItem struct {
	ProductID      string `json:"product_id"`
	Quantity       int64  `json:"quantity"`
	OriginalAmount int64  `json:"original_amount"`
	DiscountAmount int64  `json:"discount_amount"`
}

// payload is the body of a redemption webhook, without its event and redemption id
// (the outbox row adds them).
type payload struct {
	OrderID        string        `json:"order_id"`
	PromoCode      string        `json:"promo_code"`
	GroupID        int64         `json:"group_id"`
	CustomerID     string        `json:"customer_id"`
	Currency       string        `json:"currency"`
	OrderAmount    int64         `json:"order_amount"`
	DiscountAmount int64         `json:"discount_amount"`
	Items          []WebhookItem `json:"items"`
	IssueID        *int64        `json:"issue_id,omitempty"`
	MailingID      *int64        `json:"mailing_id,omitempty"`
}

func webhookPayload(req *RedeemRequest, o *offer, d offers.Discount) payload {
	items := make([]WebhookItem, len(d.PerItem))
	for i, l := range d.PerItem {
		items[i] = WebhookItem{ProductID: l.ProductID, Quantity: l.Quantity, OriginalAmount: l.OriginalAmount, DiscountAmount: l.DiscountAmount}
	}
	return payload{OrderID: req.OrderID, PromoCode: o.code, GroupID: o.groupID, CustomerID: req.CustomerID,
		Currency: d.Currency, OrderAmount: d.OrderAmount, DiscountAmount: d.Amount, Items: items,
		IssueID: nullInt(o.issueID), MailingID: nullInt(o.mailingID)}
}

// notify tells the Notifier that webhook rows of the redemption were written.
func (s *Service) notify(ctx context.Context, redemptionID int64) {
	if s.note == nil {
		return
	}
	if err := s.note.WebhooksWritten(ctx, []int64{redemptionID}); err != nil {
		s.log.Warn("enqueueing a redemption webhook failed; the sweep will send it", "redemption", redemptionID, "err", err)
	}
}
