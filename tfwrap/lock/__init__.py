"""The state lock: Terraform's ``.tflock`` object (and DynamoDB item), its holder, its heartbeat."""
