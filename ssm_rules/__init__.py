"""ssm-rules: check sales account plans against the Signature Selling Method."""

__version__ = "0.1.0"
