package mongo

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
)

// Payments implements projections.Payments: the appointments that take an
// online payment, newest payment change (paymentPos) first, served by the
// indexes on paymentPos and on payment.status with paymentPos.
func (m *Appointments) Payments(ctx context.Context, q projections.PaymentQuery) (projections.PaymentPage, error) {
	if err := q.Validate(); err != nil {
		return projections.PaymentPage{}, err
	}
	var status any = bson.D{{Key: "$ne", Value: string(doctor.PaymentNotRequired)}}
	if q.Status != "" {
		status = q.Status
	}
	filter := bson.D{{Key: "payment.status", Value: status}}
	if q.Cursor != "" {
		c, err := projections.DecodePaymentCursor(q.Cursor)
		if err != nil {
			return projections.PaymentPage{}, err
		}
		filter = append(filter, bson.E{Key: "paymentPos", Value: bson.D{{Key: "$lt", Value: pos(c)}}})
	}
	r, err := m.read(ctx)
	if err != nil {
		return projections.PaymentPage{}, err
	}
	o := options.Find().SetSort(bson.D{{Key: "paymentPos", Value: -1}}).SetLimit(int64(q.Limit) + 1)
	cur, err := r.appts.Find(ctx, filter, o)
	if err != nil {
		return projections.PaymentPage{}, fail(ctx, err, "payments")
	}
	var docs []apptDoc
	if err := cur.All(ctx, &docs); err != nil {
		return projections.PaymentPage{}, fail(ctx, err, "payments")
	}
	page := projections.PaymentPage{Payments: make([]projections.PaymentRow, 0, min(len(docs), q.Limit))}
	if len(docs) > q.Limit {
		docs = docs[:q.Limit]
		page.NextCursor = projections.EncodePaymentCursor(uint64(docs[len(docs)-1].PaymentPos))
	}
	for i := range docs {
		rec := docs[i].record()
		page.Payments = append(page.Payments, rec.Row())
	}
	return page, nil
}
