import Foundation

/// The repository's committed files the tests read (models and texts in samples/).
enum Repository {
    static let root = URL(fileURLWithPath: #filePath)  // Tests/RecurdTests/Support/Executables.swift
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The committed character LSTM (65 symbols; an upper-case-and-punctuation text model).
    static let shakespeareModel = root.appendingPathComponent("samples/shakespeare-lstm.safetensors")
    /// The committed byte LSTM trained on synthetic service logs.
    static let logsModel = root.appendingPathComponent("samples/logs.safetensors")
    /// A few lines of Hamlet, all inside the Shakespeare model's vocabulary.
    static let hamlet = root.appendingPathComponent("samples/hamlet.txt")
}
