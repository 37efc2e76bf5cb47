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
}

// ImportResult counts what an import added; rows already present from an
// earlier import of the same history are skipped.
type ImportResult struct {
	Added   int
	Skipped int
}
