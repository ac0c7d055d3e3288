def handler(event, context):
    name = event.get("name", "world")
    # Anything printed goes to the function's log, tagged with the request id.
    print(f"greeting {name} in request {context.aws_request_id}")
    return {"message": "hello, " + name, "request_id": context.aws_request_id}
