# a lone @
@
