# calling a formals function with a non-set
({ a ? 1 }: a) 5
