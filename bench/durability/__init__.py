"""The durability lab: each way Kafka loses a message, run with the weak setting and the safe one."""
