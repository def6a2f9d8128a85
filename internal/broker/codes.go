package broker

// Kafka error codes the broker returns (the protocol's numbering).
const (
	codeOffsetOutOfRange          int16 = 1
	codeCorruptMessage            int16 = 2
	codeUnknownTopicOrPartition   int16 = 3
	codeLeaderNotAvailable        int16 = 5
	codeNotLeader                 int16 = 6
	codeMessageTooLarge           int16 = 10
	codeInvalidTopic              int16 = 17
	codeTopicAlreadyExists        int16 = 36
	codeInvalidPartitions         int16 = 37
	codeInvalidReplicationFactor  int16 = 38
	codeInvalidReplicaAssignment  int16 = 39
	codeInvalidConfig             int16 = 40
	codeInvalidRequest            int16 = 42
	codeStorageError              int16 = 56
	codeUnknownTopicID            int16 = 100
	codeUnsupportedEndpointType   int16 = 119
	codeTransactionalIDNotAllowed int16 = 42 // see InitProducerID
)
