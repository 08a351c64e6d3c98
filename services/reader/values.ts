/** The value decoder lives with the contract (snapshot chunks in the lake are decoded by readers of the lake too). */
export * from "../../contracts/pg-text-values.ts"
