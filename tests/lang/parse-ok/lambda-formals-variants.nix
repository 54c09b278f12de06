# all formals variants
[ ({ }: 1) ({ ... }: 1) ({ a, }: a) ({ a ? 1, b, ... }: a) (args@{ a }: a) ({ a }@args: a) ({ a ? { b = 1; }.b }: a) ]
