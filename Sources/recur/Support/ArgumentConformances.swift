import ArgumentParser
import RecurCore

// RecurCore's enums are String raw values with every case listed, which is all
// ArgumentParser needs to parse them and to list the choices in --help.
extension CellKind: ExpressibleByArgument {}
extension Nonlinearity: ExpressibleByArgument {}
extension TokenizerKind: ExpressibleByArgument {}
extension UnknownPolicy: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}
extension LearningRateSchedule: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}

/// The element type of a written model, by its short name.
enum StorageChoice: String, CaseIterable, ExpressibleByArgument {
    case f32, f16, bf16

    var storage: StorageType {
        switch self {
        case .f32: .float32
        case .f16: .float16
        case .bf16: .bfloat16
        }
    }
}
