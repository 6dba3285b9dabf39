"""NATS: the only place subjects are built, the message codec, the embedded server and provisioning."""
