package feedback

// ImportedConversation is one labelled conversation of history loaded by
// `hotlane import`: a conversation with one decision and its outcome. IDs
// are chosen by the importer so that loading the same history twice adds
// nothing the second time.
type ImportedConversation struct {
	Decision Decision // its ID, ConversationID and OccurredAt are required
	// Outcome is EventConverted or EventLost, dated at the decision.
	Outcome string
	EventID string
	// Value is a conversion's deal value, when known.
	Value *float64

	// A history that knows more may carry it, each optional:
	//
	// Alert is the tier alert the decision fired, stored as fired and
	// already dispatched (a past alert is never delivered), with its
	// agents' Labels (Agent, Label and UpdatedAt are used).
	Alert  *Alert
	Labels []AlertLabel
	// Events are more of its events, such as first_response and
	// tier_feedback; each needs its ID, Type and At.
	Events []Event
}

// ImportResult counts what an import added; rows already present from an
// earlier import of the same history are skipped.
type ImportResult struct {
	Added   int
	Skipped int
}
