# a lone )
)
