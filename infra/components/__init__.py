"""One construct per logical unit; stacks only compose them and grant access between them."""
