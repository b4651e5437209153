"""Events: the visit event, its byte encoding (one layout for every path) and its schemas."""
