"""Talking to S3, DynamoDB and STS the way Terraform does (same endpoint, region, credentials)."""
