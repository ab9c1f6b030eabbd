export class Upbroker {}
