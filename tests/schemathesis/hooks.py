# schemathesis hooks (loaded by tests/schemathesis/run through SCHEMATHESIS_HOOKS): how to put
# a generated `message/rfc822` body on the wire. The document describes it as bytes (a list of
# 0..255 integers); anything else generated is sent as its text, so casegate sees raw bytes
# of every shape, as it would from a client.
import schemathesis
from schemathesis.transport.serialization import serialize_binary


@schemathesis.serializer("message/rfc822")
def rfc822(ctx, value):
    if isinstance(value, list) and all(isinstance(b, int) and 0 <= b < 256 for b in value):
        return {"data": bytes(value)}
    return {"data": serialize_binary(value)}
