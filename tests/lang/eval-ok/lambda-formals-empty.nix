# lambda with empty formals accepts an empty set
({ }: "empty") { }
