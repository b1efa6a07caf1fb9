"""Scripts that execute and check the book's chapters (not part of the ebmbook package)."""
