# fromJSON with malformed JSON
builtins.fromJSON "{bad"
