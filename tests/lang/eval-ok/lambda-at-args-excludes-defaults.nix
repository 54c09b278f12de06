# the @ binding does not include default values
({ a ? 1, ... }@args: args) { b = 2; }
