# two @ bindings on one formals pattern
a@{ b }@c: b
