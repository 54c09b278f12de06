# a lone }
}
