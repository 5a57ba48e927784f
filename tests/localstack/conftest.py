from localstack_fixtures import aws_client, localstack, localstack_env, localstack_url

__all__ = ["aws_client", "localstack", "localstack_env", "localstack_url"]
