import ArgumentParser
import Logging
import RecurCore
import RecurServer
import RecurStore

// swift-log's levels (trace ... critical) and the stdin output formats (json, tsv) are String
// raw values with every case listed, which is all ArgumentParser needs to parse them and to
// list the choices in --help.
extension Logger.Level: @retroactive ExpressibleByArgument {}
extension RecurdConfiguration.OutputFormat: ExpressibleByArgument {}
extension Durability: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}
